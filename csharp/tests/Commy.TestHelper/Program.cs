using System;
using Commy;

// usage: Commy.TestHelper <segment> <worker id> <count> [batch]
// Adds 1 to box "counter" and pushes id*1_000_000+i to deque "items" for
// i in [0, count) (count -1: until killed). With "batch" each pair of
// operations is one atomic change (Segment.Lock), so a kill -9 anywhere
// leaves counter == items.Count after recovery.
// Exits 0 when done, 2 on bad arguments, 1 on a commy error.
if (args.Length < 3 || !long.TryParse(args[1], out long id) || !int.TryParse(args[2], out int count) ||
    (args.Length == 4 && args[3] != "batch") || args.Length > 4)
{
    Console.Error.WriteLine("usage: Commy.TestHelper <segment> <worker id> <count> [batch]");
    return 2;
}
bool batch = args.Length == 4;
try
{
    using var seg = Segment.Open(args[0]);
    using var counter = seg.OpenBox<long>("counter");
    using var items = seg.OpenDeque<long>("items");
    Console.WriteLine("ready");
    Console.Out.Flush();
    for (long i = 0; count < 0 || i < count; i++)
    {
        if (batch)
        {
            using (seg.Lock())
            {
                counter.Increment();
                items.PushBack(id * 1_000_000 + i % 1_000_000);
            }
            // Keep the deque short so a long run stays within the segment.
            if (items.LongCount > 10_000)
            {
                using (seg.Lock())
                {
                    if (items.TryPopFront(out _)) counter.Decrement();
                }
            }
        }
        else
        {
            counter.Increment();
            items.PushBack(id * 1_000_000 + i);
        }
    }
    return 0;
}
catch (CommyException e)
{
    Console.Error.WriteLine($"worker {id}: {e.GetType().Name} ({e.Code}): {e.Message}");
    return 1;
}
