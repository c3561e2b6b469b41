"""The write side: the application that records commands, and the bulk import."""
