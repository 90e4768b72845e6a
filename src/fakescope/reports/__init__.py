"""Evaluation reports: JSON for machines, one self-contained HTML file for people."""
