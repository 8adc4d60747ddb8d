import sys
import threading


def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)


def main():
    n = int(sys.stdin.readline())
    print(depth(n))


sys.setrecursionlimit(1 << 20)
threading.stack_size(1 << 26)
worker = threading.Thread(target=main)
worker.start()
worker.join()
