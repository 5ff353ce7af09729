"""Phone gateway: telephony audio in, Vosk recognition, Rasa turns, pyttsx3 speech out."""
