// The shim's /debug/nodes view, as tests read it.
export interface DebugNode {
  id: string;
  types: Record<
    string,
    {
      status: string;
      ackedVersion: string | null;
      sentVersion: string | null;
      lastNack: { message: string; at: string } | null;
    } & Record<string, any>
  >;
  [key: string]: any;
}

export async function debugNodes(adminUrl: string): Promise<DebugNode[]> {
  return (await (await fetch(`${adminUrl}/debug/nodes`)).json()) as DebugNode[];
}

export async function nodeStatus(adminUrl: string, id: string): Promise<DebugNode | undefined> {
  return (await debugNodes(adminUrl)).find((n) => n.id === id);
}
