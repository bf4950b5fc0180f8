"""The bundled reference Home Agent and Mobile Node: sans-I/O cores and thin daemons."""
