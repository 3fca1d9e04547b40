"""The Linux backend: AT-SPI spoken directly over D-Bus with dbus-fast."""
