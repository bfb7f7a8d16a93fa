import json, os, sys, collections
M={"get","put","post","delete","options","head","patch","trace"}
vers=collections.Counter(); rows=[]
for root,_,fs in os.walk(sys.argv[1]):
    for f in fs:
        if not f.endswith('.json'): continue
        p=os.path.join(root,f)
        try: d=json.load(open(p))
        except Exception as e: continue
        if not isinstance(d,dict): continue
        v=d.get('openapi') or d.get('swagger'); vers[str(v)]+=1
        ops=sum(1 for i in (d.get('paths') or {}).values() if isinstance(i,dict) for m in i if m in M)
        rows.append((ops,v,os.path.getsize(p),p))
print(vers)
rows.sort(reverse=True)
for r in rows[:15]: print(*r)
print('3.1 docs:', [(o,s,p) for o,v,s,p in rows if str(v).startswith('3.1')][:10])
