"""Reading answers: the marker parser, reference resolution, similarity and the two judges."""
