"""Records: what the product archives (Noark 5 metadata, Fiks Arkiv sidecars, PDF/A documents)."""
