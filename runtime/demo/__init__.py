"""The demo: simulated systems and `syncline demo`."""
