"""The fault campaign of issue 8: sales over many lanes while everything breaks.

    python chaos/campaign.py --sales 2000 --lanes 8 --seed 1

See docs/reliability.md for the fault model, the invariants and a recorded run.
"""
