"""galdesk.cluster"""
