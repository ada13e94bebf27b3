"""EAS contract ABIs and bytecode, shipped as package data. See PROVENANCE.md."""
