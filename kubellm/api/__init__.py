"""kubellm.api"""
