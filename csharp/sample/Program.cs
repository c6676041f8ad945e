// The first program of docs/csharp.md: every run of it (from any number of
// processes at once) adds to the same shared state.
// doc:first-program
using Commy;

string path = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "commy-sample.mem");

using var seg = Segment.Open(path);
using var runs = seg.OpenBox<long>("runs");
using var prices = seg.OpenMap<string, double>("prices");
using var log = seg.OpenDeque<string>("log");

long run = runs.Increment();                 // atomic across processes
prices["apple"] = 1.25;
prices["pear"] = 0.5 + run;
log.PushBack($"run {run} by process {Environment.ProcessId}");

Console.WriteLine($"run {run}: {prices.Count} prices, pear costs {prices["pear"]}");
foreach (string line in log)
    Console.WriteLine(line);
// end
