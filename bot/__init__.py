"""Code loaded by the Rasa server process (Python 3.10 environment): input channels and NLU resources."""
