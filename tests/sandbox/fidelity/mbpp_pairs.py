class Pair:
    def __init__(self, a, b):
        self.a = a
        self.b = b


def max_chain_length(pairs, n):
    pairs = sorted(pairs, key=lambda p: p.b)
    best, end = 0, None
    for p in pairs[:n]:
        if end is None or p.a > end:
            best, end = best + 1, p.b
    return best
