print("meshd")
