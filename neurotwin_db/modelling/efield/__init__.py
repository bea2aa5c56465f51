"""Electric fields of tES montages: P1 FEM with AMG-preconditioned CG, lead fields."""
