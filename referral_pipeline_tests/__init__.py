"""Tests of the referral pipeline, one module per package module."""
