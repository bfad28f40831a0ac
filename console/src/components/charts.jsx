// Small figures drawn as SVG: a warm VM's precopy history and its predicted
// against measured downtime.
import { bytes, duration } from '../format.js';

// One bar per precopy: the data it copied (height), its copy time under it.
export function PrecopyChart({ precopies }) {
  const list = (precopies || []).filter((p) => p.changedBytes !== undefined);
  if (!list.length) return <p>No precopy has finished yet.</p>;
  const max = Math.max(...list.map((p) => p.changedBytes || 0), 1);
  const w = 46;
  const h = 110;
  return (
    <svg
      width={list.length * w + 20}
      height={h + 40}
      role="img"
      aria-label="Precopy history: data copied per precopy"
      data-testid="precopy-chart"
    >
      {list.map((p, i) => {
        const bh = Math.max(2, ((p.changedBytes || 0) / max) * h);
        return (
          <g key={i} transform={`translate(${10 + i * w},0)`}>
            <title>{`${p.stage} ${i + 1}: ${bytes(p.changedBytes)} in ${duration(p.copySeconds)}`}</title>
            <rect x={4} y={h - bh} width={w - 12} height={bh} fill={p.full ? '#f0ab00' : '#0066cc'} />
            <text x={w / 2 - 2} y={h + 14} fontSize="10" textAnchor="middle">
              {bytes(p.changedBytes)}
            </text>
            <text x={w / 2 - 2} y={h + 28} fontSize="10" textAnchor="middle" fill="#6a6e73">
              {duration(p.copySeconds)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

// Predicted (before the cutover) against measured (power-off to the end of
// the final copy) downtime, as two bars on one scale.
export function DowntimeChart({ warm }) {
  const predicted = warm?.predictedAtCutover?.available
    ? warm.predictedAtCutover.seconds
    : warm?.predictedDowntime?.available
      ? warm.predictedDowntime.seconds
      : null;
  const measured = warm?.downtime ? warm.downtime.copySeconds : null;
  if (predicted === null && measured === null) return <p>No downtime prediction yet.</p>;
  const max = Math.max(predicted || 0, measured || 0, 1);
  const row = (label, v, color, y) => (
    <g transform={`translate(0,${y})`}>
      <text x={0} y={14} fontSize="12">
        {label}
      </text>
      {v !== null && <rect x={80} y={2} width={Math.max(2, (v / max) * 240)} height={16} fill={color} />}
      <text x={v !== null ? 86 + (v / max) * 240 : 80} y={14} fontSize="12">
        {v !== null ? duration(v) : 'not yet'}
      </text>
    </g>
  );
  return (
    <svg width={400} height={50} role="img" aria-label="Predicted and measured downtime" data-testid="downtime-chart">
      {row('Predicted', predicted, '#8bc1f7', 0)}
      {row('Measured', measured, '#0066cc', 26)}
    </svg>
  );
}
