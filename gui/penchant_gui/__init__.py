"""The Penchant desktop app (PySide6). Empty until the app lands."""
