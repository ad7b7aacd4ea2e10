"""Studies, geometry and display maths. No Qt, no torch: everything here runs headless."""
