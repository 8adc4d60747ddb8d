import os
import sys
from io import BytesIO, IOBase

CHUNK = 8192


class FastIO(IOBase):
    newlines = 0

    def __init__(self, file):
        self._fd = file.fileno()
        self.buffer = BytesIO()
        self.writable = "x" in file.mode or "r" not in file.mode
        self.write = self.buffer.write if self.writable else None

    def read(self):
        while True:
            block = os.read(self._fd, max(os.fstat(self._fd).st_size, CHUNK))
            if not block:
                break
            at = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(block), self.buffer.seek(at)
        self.newlines = 0
        return self.buffer.read()

    def readline(self):
        while self.newlines == 0:
            block = os.read(self._fd, max(os.fstat(self._fd).st_size, CHUNK))
            self.newlines = block.count(b"\n") + (not block)
            at = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(block), self.buffer.seek(at)
        self.newlines -= 1
        return self.buffer.readline()

    def flush(self):
        if self.writable:
            os.write(self._fd, self.buffer.getvalue())
            self.buffer.truncate(0), self.buffer.seek(0)


class TextIO(IOBase):
    def __init__(self, file):
        self.buffer = FastIO(file)
        self.flush = self.buffer.flush
        self.writable = self.buffer.writable
        self.write = lambda s: self.buffer.write(s.encode("ascii"))
        self.read = lambda: self.buffer.read().decode("ascii")
        self.readline = lambda: self.buffer.readline().decode("ascii")


sys.stdin, sys.stdout = TextIO(sys.stdin), TextIO(sys.stdout)
input = lambda: sys.stdin.readline().rstrip("\r\n")

n = int(input())
values = list(map(int, input().split()))
print(n, sum(values), max(values))
