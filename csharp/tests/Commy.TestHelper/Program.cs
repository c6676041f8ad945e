using System;
using Commy;

// usage: Commy.TestHelper <segment> <worker id> <count>
// Adds 1 to box "counter" and pushes id*1_000_000+i to deque "items" for
// i in [0, count); exits 0 when done, 2 on bad arguments, 1 on error.
if (args.Length != 3 || !long.TryParse(args[1], out long id) || !int.TryParse(args[2], out int count))
{
    Console.Error.WriteLine("usage: Commy.TestHelper <segment> <worker id> <count>");
    return 2;
}
try
{
    using var seg = Segment.Open(args[0]);
    using var counter = seg.OpenBox<long>("counter");
    using var items = seg.OpenDeque<long>("items");
    for (int i = 0; i < count; i++)
    {
        counter.Increment();
        items.PushBack(id * 1_000_000 + i);
    }
    return 0;
}
catch (CommyException e)
{
    Console.Error.WriteLine($"worker {id}: {e.GetType().Name} ({e.Code}): {e.Message}");
    return 1;
}
