"""Control Center's load, stress, soak and chaos harness (Scripts/loadtest)."""
