"""Kaltura webhook intake: request bounds, signature, body parsing, normalization and exactly-once enqueue."""
