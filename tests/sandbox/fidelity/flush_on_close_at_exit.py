import os
from io import BytesIO, IOBase


class Out(IOBase):
    """Collects output in memory; written to fd 1 on flush (and so on close at exit)."""

    def __init__(self):
        self.data = BytesIO()

    def write(self, text):
        self.data.write(text.encode())

    def flush(self):
        os.write(1, self.data.getvalue())
        self.data = BytesIO()


out = Out()
total = sum(range(10))
out.write(f"{total}\n")
