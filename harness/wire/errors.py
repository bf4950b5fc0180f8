"""The error every wire decoder raises for bytes that do not hold together."""


class Malformed(ValueError):
    """The bytes do not form the structure they claim to."""
