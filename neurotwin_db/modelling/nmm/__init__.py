"""Neural-mass models: Jansen-Rit and the laminar NMM, networks, stimulation, fitting."""
