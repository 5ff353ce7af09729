"""The web app (Sanic): the citizen chat page, the chat gateway to Rasa, and the agent desk."""
