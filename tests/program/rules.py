"""An independent checker of the safety rules over expanded segments, written from design.md's table.

It shares no code with `retro_ftms.program.plan`: floats with a tolerance, straight from the contract.
"""

from __future__ import annotations

from retro_ftms.program import Program, Segment
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig

EPS = 1e-6


def _on_grid(value: float, per_unit: int) -> bool:
    return abs(value * per_unit - round(value * per_unit)) < 1e-6


def rule_violations(
    program: Program, segments: list[Segment], limits: SafetyConfig | EffectiveLimits
) -> list[str]:
    """Every rule the segments break; empty when the runner may ask the guard for them as they are."""
    out: list[str] = []
    if not segments:
        return ["no segments"]
    min_speed = limits.min_speed_kmh if isinstance(limits, EffectiveLimits) else 0.0
    speed, incline = 0.0, 0.0  # stopped and flat before the start
    last_speed_rise: float | None = None
    last_incline_rise: float | None = None
    rises_in_step: dict[int, set[str]] = {}
    clock = 0.0
    for number, seg in enumerate(segments):
        where = f"segment {number} (step {seg.step_index})"
        if abs(seg.start_s - clock) > EPS:
            out.append(f"{where}: starts at {seg.start_s}, not where the last one ended ({clock})")
        if seg.duration_s <= 0:
            out.append(f"{where}: empty")
        clock = seg.start_s + seg.duration_s
        if not _on_grid(seg.target_speed_kmh, 100) or not _on_grid(seg.target_incline_pct, 10):
            out.append(f"{where}: off the 0.01 km/h / 0.1 % grid")
        if seg.target_speed_kmh > limits.max_speed_kmh + EPS:
            out.append(f"{where}: speed {seg.target_speed_kmh} above the cap")
        if seg.target_speed_kmh < max(min_speed, 0.01) - EPS:
            out.append(f"{where}: speed {seg.target_speed_kmh} below the minimum")
        if seg.target_incline_pct > limits.max_incline_pct + EPS:
            out.append(f"{where}: incline {seg.target_incline_pct} above the cap")
        if seg.target_incline_pct < limits.min_incline_pct - EPS:
            out.append(f"{where}: incline {seg.target_incline_pct} below the minimum")
        speed_up = seg.target_speed_kmh > speed + EPS
        incline_up = seg.target_incline_pct > incline + EPS
        if number == 0 and seg.target_speed_kmh > limits.first_speed_max_kmh + EPS:
            out.append(f"{where}: first speed {seg.target_speed_kmh} above the first-speed limit")
        if speed_up and incline_up:
            out.append(f"{where}: speed and incline rise together")
        if speed_up:
            if number > 0 and seg.target_speed_kmh - speed > limits.speed_rise_max_kmh + EPS:
                out.append(f"{where}: speed rise {seg.target_speed_kmh - speed:.3f} too big")
            if last_speed_rise is not None and seg.start_s - last_speed_rise < limits.rise_interval_s - EPS:
                out.append(f"{where}: speed rise {seg.start_s - last_speed_rise:.1f} s after the last")
            if (
                last_incline_rise is not None
                and seg.start_s - last_incline_rise < limits.rise_separation_s - EPS
            ):
                out.append(
                    f"{where}: speed rise {seg.start_s - last_incline_rise:.1f} s after an incline rise"
                )
            last_speed_rise = seg.start_s
            rises_in_step.setdefault(seg.step_index, set()).add("speed")
        if incline_up:
            if seg.target_incline_pct - incline > limits.incline_rise_max_pct + EPS:
                out.append(f"{where}: incline rise {seg.target_incline_pct - incline:.2f} too big")
            if (
                last_incline_rise is not None
                and seg.start_s - last_incline_rise < limits.rise_interval_s - EPS
            ):
                out.append(f"{where}: incline rise {seg.start_s - last_incline_rise:.1f} s after the last")
            if last_speed_rise is not None and seg.start_s - last_speed_rise < limits.rise_separation_s - EPS:
                out.append(f"{where}: incline rise {seg.start_s - last_speed_rise:.1f} s after a speed rise")
            last_incline_rise = seg.start_s
            rises_in_step.setdefault(seg.step_index, set()).add("incline")
        speed, incline = seg.target_speed_kmh, seg.target_incline_pct
    out.extend(f"step {i}: both speed and incline rise" for i, q in rises_in_step.items() if len(q) == 2)
    out.extend(_step_shape(program, segments))
    return out


def _step_shape(program: Program, segments: list[Segment]) -> list[str]:
    """Each step appears, in order, for its own duration, ending at (not above) the file's target."""
    out: list[str] = []
    indices = [seg.step_index for seg in segments]
    if indices != sorted(indices) or set(indices) != set(range(len(program.steps))):
        out.append(f"steps out of order or missing: {indices}")
        return out
    factor = 1.609344 if program.units == "mph" else 1.0
    previous_final = 0.0
    for index, step in enumerate(program.steps):
        own = [seg for seg in segments if seg.step_index == index]
        total = sum(seg.duration_s for seg in own)
        if abs(total - step.seconds) > 1e-3:
            out.append(f"step {index}: lasts {total} s, not {step.seconds} s")
        exact = step.speed * factor
        final = own[-1].target_speed_kmh
        if any(seg.target_speed_kmh > max(exact + 0.005, previous_final) + EPS for seg in own):
            out.append(f"step {index}: faster than the file says")
        previous_final = final
        if final > exact + 0.005 + EPS or final < exact * 0.97 - 0.011:
            out.append(f"step {index}: ends at {final} km/h, the file says {exact:.3f}")
        if abs(own[-1].target_incline_pct - step.incline) > 0.05 + EPS:
            out.append(f"step {index}: ends at incline {own[-1].target_incline_pct}, not {step.incline}")
        if any(
            seg.step_name != step.name or seg.step_kind != step.kind or seg.note != step.note for seg in own
        ):
            out.append(f"step {index}: segment labels differ from the step")
    return out
