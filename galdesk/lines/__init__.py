"""galdesk.lines"""
