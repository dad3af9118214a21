"""mllg: machine-learning force fields for Landau–Lifshitz–Gilbert dynamics of itinerant magnets."""

__version__ = "0.1.0"
