"""Attachment files: receiving uploads (`upload`), checking them (`sniffing`) and storing them (`storage`)."""
