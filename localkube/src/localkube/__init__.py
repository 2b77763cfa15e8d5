"""kubellm.localkube"""
