print(int(input()) * 3)
exit()
print("never")
