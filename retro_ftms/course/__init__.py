"""Courses: a person's sessions from week to week, and the rules that decide the next one."""
