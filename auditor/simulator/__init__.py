"""A local Bitbucket Cloud 2.0 simulator, the ground every test, demo and benchmark stands on."""
