"""The macOS backend: AX through pyobjc. Imports cleanly without pyobjc (it loads lazily)."""
