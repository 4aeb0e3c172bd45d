"""The recorded (blue) dialogue layout: directory names, import, export, lint, compare and judge files."""
