"""Telephony transports: each turns one platform's wire format into frames and back."""
