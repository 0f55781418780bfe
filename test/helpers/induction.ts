// The induction model's figure of merit (scripts/induction.py's losses): mean next-token loss
// over the first half of each sequence and over its repeated half.
export function repeatLosses(logits: Float32Array, vocab: number, rows: number[][], half: number): { first: number; repeated: number } {
  const seq = rows[0].length;
  let first = 0;
  let repeated = 0;
  rows.forEach((row, b) => {
    for (let i = 0; i < seq - 1; i++) {
      const offset = (b * seq + i) * vocab;
      let top = -Infinity;
      for (let v = 0; v < vocab; v++) top = Math.max(top, logits[offset + v]);
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - top);
      const loss = top + Math.log(sum) - logits[offset + row[i + 1]];
      if (i < half) first += loss;
      else repeated += loss;
    }
  });
  return { first: first / (rows.length * half), repeated: repeated / (rows.length * half) };
}
