"""Small helpers shared by our services (action server, web app, voice gateway): privacy, logging."""
