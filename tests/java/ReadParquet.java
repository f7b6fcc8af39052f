// Reads Parquet files with parquet-java (parquet-hadoop), the reader Druid,
// Spark, Hive and Trino use, all in one JVM. For each file prints
//   FILE <path> <rows read through ParquetReader> <row count in the footer>
//   COLUMN <name> <primitive type> <logical type or ->
//   SUM <column> <sum of the INT64 column over every row read>
// Run: java -cp "$PYSPARK/jars/*" ReadParquet.java FILE...
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetFileReader;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

public class ReadParquet {
    public static void main(String[] args) throws Exception {
        Configuration conf = new Configuration();
        for (String file : args) {
            Path path = new Path(file);
            MessageType schema;
            long footerRows;
            try (ParquetFileReader reader = ParquetFileReader.open(HadoopInputFile.fromPath(path, conf))) {
                schema = reader.getFooter().getFileMetaData().getSchema();
                footerRows = reader.getRecordCount();
            }
            List<Type> fields = schema.getFields();
            long[] sums = new long[fields.size()];
            long rows = 0;
            try (ParquetReader<Group> reader = ParquetReader.builder(new GroupReadSupport(), path).withConf(conf).build()) {
                for (Group g = reader.read(); g != null; g = reader.read()) {
                    rows++;
                    for (int i = 0; i < fields.size(); i++) {
                        PrimitiveType p = fields.get(i).asPrimitiveType();
                        if (p.getPrimitiveTypeName() == PrimitiveType.PrimitiveTypeName.INT64 && g.getFieldRepetitionCount(i) > 0) {
                            sums[i] += g.getLong(i, 0);
                        }
                    }
                }
            }
            System.out.println("FILE " + file + " " + rows + " " + footerRows);
            for (int i = 0; i < fields.size(); i++) {
                PrimitiveType p = fields.get(i).asPrimitiveType();
                Object logical = p.getLogicalTypeAnnotation();
                System.out.println("COLUMN " + p.getName() + " " + p.getPrimitiveTypeName() + " " + (logical == null ? "-" : logical.toString().replace(' ', '_')));
                if (p.getPrimitiveTypeName() == PrimitiveType.PrimitiveTypeName.INT64) {
                    System.out.println("SUM " + p.getName() + " " + sums[i]);
                }
            }
        }
    }
}
