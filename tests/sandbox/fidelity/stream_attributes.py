import os
import sys

print(sys.stdin.mode, sys.stdout.mode, sys.stderr.mode)
print(sys.stdin.name, sys.stdout.name, sys.stdin.buffer.raw.name)
print(sys.stdin.encoding, sys.stdin.errors, sys.stderr.errors)
print(sys.stdout.line_buffering, sys.stderr.line_buffering, sys.stdin.isatty(), sys.stdin.seekable())
print(sys.stdin is sys.__stdin__, sys.stdin.fileno(), sys.stdout.fileno(), sys.stderr.fileno())
print(__name__, os.path.basename(sys.argv[0]), len(sys.argv), sys.getrecursionlimit())
print(type(sys.stdin.buffer).__name__, type(sys.stdout.buffer).__name__, sys.stdin.newlines)
