"""Custom NLU components the Rasa server loads (listed in config.yml)."""
