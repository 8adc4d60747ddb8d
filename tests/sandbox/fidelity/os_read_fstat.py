import os

raw = os.read(0, os.fstat(0).st_size)
words = raw.split()
os.write(1, b"%d %d\n" % (len(words), sum(map(int, words))))
