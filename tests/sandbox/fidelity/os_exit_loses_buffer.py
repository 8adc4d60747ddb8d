import os

print("lost: never flushed")
os._exit(0)
