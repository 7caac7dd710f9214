"""retro-ftms: guided backward-walking sessions on Bluetooth FTMS treadmills, safety first."""

__version__ = "0.1.0"
