// The C# side of the three-language demo: opens the C writer's segment
// read-only and prints what is in it. Usage: dotnet run -- PATH
using System.Linq;
using Commy;

using var seg = Segment.OpenReadOnly(args[0]);
using var visits = seg.OpenBox<long>("visits", mode: OpenMode.OpenExisting);
using var prices = seg.OpenMap<string, double>("prices", mode: OpenMode.OpenExisting);
using var scores = seg.OpenOrderedMap<long, string>("scores", mode: OpenMode.OpenExisting);
using var log = seg.OpenDeque<string>("log", mode: OpenMode.OpenExisting);
string priceList = string.Join(", ", prices.OrderBy(p => p.Key).Select(p => $"{p.Key}: {p.Value}"));
Console.WriteLine($"C# reader: visits={visits.Value}, prices={{{priceList}}}");
Console.WriteLine($"C# reader: scores in order: [{string.Join(", ", scores.Select(s => $"({s.Key}, '{s.Value}')"))}]; " +
                  $"log: [{string.Join(", ", log.Select(l => $"'{l}'"))}]");
