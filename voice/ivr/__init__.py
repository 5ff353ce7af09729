"""Keypad service (IVR) of the phone gateway: a menu generated from the knowledge base, walked per call."""
