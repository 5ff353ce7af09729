"""The engines the call's stages drive: speech recognition (Vosk), speech synthesis (pyttsx3/espeak-ng), the bot
(Rasa's phone channel) and the expert seat's desk (hand-off tickets). Each has an interface and its real
implementation here; the stages in voice/stages/ only see the interfaces, and tests use in-process stand-ins."""
