"""kubellm.loadtests"""
